/*
 * lti/oauth.c - OAuth 1.0a signature verification (RFC 5849 section 3.4).
 *
 * Written by hand on top of OpenSSL rather than liboauth, for three reasons
 * found the hard way: liboauth's helpers take NUL-terminated strings (a %00
 * in a value would be signed differently than the consumer signed it) and
 * allocate per parameter; it has no HMAC-SHA256, which LTI 1.1 consumers may
 * use; and Debian builds it on NSS, whose lazy initialization inside
 * oauth_sign_hmac_sha1_raw() is not thread-safe: two first launches at once
 * crashed the server (tests/integration/test_pages.py, LifeCycle). So the
 * base string comes from our own decoded forms, both HMACs from OpenSSL, and
 * signatures are compared in constant time.
 */
#include "base/base.h"
#include "lti/lti.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char *const required[] = {
    "oauth_consumer_key", "oauth_signature_method", "oauth_signature", "oauth_timestamp",
    "oauth_nonce",
};

static struct str *field_for(struct lti_oauth *o, struct str name)
{
    if (str_eq_cstr(name, "oauth_consumer_key"))
        return &o->consumer_key;
    if (str_eq_cstr(name, "oauth_signature_method"))
        return &o->signature_method;
    if (str_eq_cstr(name, "oauth_signature"))
        return &o->signature;
    if (str_eq_cstr(name, "oauth_timestamp"))
        return &o->timestamp;
    if (str_eq_cstr(name, "oauth_nonce"))
        return &o->nonce;
    if (str_eq_cstr(name, "oauth_version"))
        return &o->version;
    if (str_eq_cstr(name, "oauth_body_hash"))
        return &o->body_hash;
    return NULL;
}

int lti_oauth_params(const struct form *const *lists, size_t nlists, struct lti_oauth *o,
                     struct err *err)
{
    memset(o, 0, sizeof(*o));
    for (size_t l = 0; l < nlists; l++) {
        const struct form *f = lists[l];

        for (size_t i = 0; i < f->count; i++) {
            struct str name = f->params[i].name;
            struct str *slot;

            if (!str_starts_with(name, "oauth_"))
                continue;
            /* RFC 5849 3.4.1.3: protocol parameters must not appear more than once */
            for (size_t l2 = 0; l2 <= l; l2++) {
                const struct form *g = lists[l2];
                size_t end = l2 == l ? i : g->count;

                for (size_t j = 0; j < end; j++) {
                    if (str_eq(g->params[j].name, name))
                        return err_set(err, ERR_INVALID, "parameter '%.*s' appears more than once",
                                       (int)(name.len > 64 ? 64 : name.len), name.ptr);
                }
            }
            slot = field_for(o, name);
            if (slot)
                *slot = f->params[i].value;
        }
    }
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        struct str *slot = field_for(o, str_from_cstr(required[i]));

        if (!str_present(*slot) || slot->len == 0)
            return err_set(err, ERR_INVALID, "missing parameter '%s'", required[i]);
    }
    if (str_eq_cstr(o->signature_method, "HMAC-SHA1"))
        o->method = LTI_SIG_HMAC_SHA1;
    else if (str_eq_cstr(o->signature_method, "HMAC-SHA256"))
        o->method = LTI_SIG_HMAC_SHA256;
    else
        return err_set(err, ERR_INVALID,
                       "unsupported 'oauth_signature_method' (HMAC-SHA1 or HMAC-SHA256 expected)");
    if (str_present(o->version) && !str_eq_cstr(o->version, "1.0"))
        return err_set(err, ERR_INVALID, "unsupported 'oauth_version' (1.0 expected)");
    if (str_to_i64(o->timestamp, 1, INT64_MAX / 2, &o->ts) < 0)
        return err_set(err, ERR_INVALID, "malformed 'oauth_timestamp'");
    if (o->nonce.len > LIMIT_OAUTH_NONCE_LEN || str_has_ctl(o->nonce))
        return err_set(err, ERR_INVALID, "malformed 'oauth_nonce'");
    if (o->signature.len > LIMIT_OAUTH_SIGNATURE_LEN)
        return err_set(err, ERR_INVALID, "malformed 'oauth_signature'");
    if (o->consumer_key.len > LIMIT_CONSUMER_KEY_LEN || str_has_ctl(o->consumer_key))
        return err_set(err, ERR_INVALID, "malformed 'oauth_consumer_key'");
    return 0;
}

int lti_url_normalize(struct buf *out, struct str url, struct str *query, struct err *err)
{
    const char *p = url.ptr, *end = url.ptr + url.len;
    const char *colon, *host, *host_end, *port = NULL, *path;
    bool https;

    if (query)
        *query = STR_NULL;
    colon = url.len ? memchr(p, ':', url.len) : NULL;
    if (!colon || end - colon < 3 || colon[1] != '/' || colon[2] != '/')
        return err_set(err, ERR_INVALID, "URL must be absolute");
    if (str_case_eq_cstr((struct str){ p, (size_t)(colon - p) }, "https"))
        https = true;
    else if (str_case_eq_cstr((struct str){ p, (size_t)(colon - p) }, "http"))
        https = false;
    else
        return err_set(err, ERR_INVALID, "URL scheme must be http or https");
    host = colon + 3;
    for (path = host; path < end && *path != '/' && *path != '?' && *path != '#'; path++)
        ;
    if (memchr(host, '@', (size_t)(path - host)))
        return err_set(err, ERR_INVALID, "URL must not carry user information");
    host_end = path;
    if (host < host_end && *host == '[') {
        const char *rb = memchr(host, ']', (size_t)(host_end - host));

        if (!rb)
            return err_set(err, ERR_INVALID, "malformed IPv6 address in URL");
        if (rb + 1 < host_end) {
            if (rb[1] != ':')
                return err_set(err, ERR_INVALID, "malformed URL authority");
            port = rb + 2;
        }
        host_end = rb + 1;
    } else {
        const char *c = memchr(host, ':', (size_t)(host_end - host));

        if (c) {
            port = c + 1;
            host_end = c;
        }
    }
    if (host_end == host)
        return err_set(err, ERR_INVALID, "URL has no host");
    buf_addstr(out, https ? "https://" : "http://");
    for (const char *h = host; h < host_end; h++) {
        char c = *h;

        if ((unsigned char)c <= ' ' || c == 0x7f)
            return err_set(err, ERR_INVALID, "malformed host in URL");
        buf_addch(out, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
    }
    if (port) {
        struct str ps = { port, (size_t)(path - port) };
        int64_t pn;

        if (str_to_i64(ps, 1, 65535, &pn) < 0)
            return err_set(err, ERR_INVALID, "malformed port in URL");
        if (!((https && pn == 443) || (!https && pn == 80)))
            buf_addf(out, ":%" PRId64, pn);
    }
    {
        const char *q = path, *frag;

        while (q < end && *q != '?' && *q != '#')
            q++;
        if (q == path)
            buf_addch(out, '/');
        else
            buf_add(out, path, (size_t)(q - path));
        frag = memchr(q, '#', (size_t)(end - q));
        if (query && q < end && *q == '?')
            *query = (struct str){ q + 1, (size_t)((frag ? frag : end) - q - 1) };
    }
    return buf_check(out, "URL", err);
}

struct pair {
    size_t name_off, name_len, value_off, value_len;
};

/* qsort has no context argument in C11; a thread-local base keeps this reentrant. */
static _Thread_local const char *sort_base;

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(sort_base + x->name_off, sort_base + y->name_off, n);

    if (c)
        return c;
    if (x->name_len != y->name_len)
        return x->name_len < y->name_len ? -1 : 1;
    n = x->value_len < y->value_len ? x->value_len : y->value_len;
    c = memcmp(sort_base + x->value_off, sort_base + y->value_off, n);
    if (c)
        return c;
    return x->value_len < y->value_len ? -1 : (x->value_len > y->value_len);
}

/*
 * Writes `s` RFC 3986-encoded twice, as the parameter string appears in the
 * base string: an unreserved byte as it is, any other as "%25XX" (its %XX,
 * whose "%" the second encoding turns into %25). At most 5 bytes per byte.
 */
static char *encode_twice(char *d, struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];

        if (form_unreserved[c]) {
            *d++ = (char)c;
        } else {
            d[0] = '%';
            d[1] = '2';
            d[2] = '5';
            d[3] = form_hex[c >> 4];
            d[4] = form_hex[c & 15];
            d += 5;
        }
    }
    return d;
}

int lti_oauth_base_string(struct buf *out, struct str method, struct str base_uri,
                          const struct form *const *lists, size_t nlists, struct err *err)
{
    struct buf enc = BUF_INIT(LIMIT_BASE_STRING_LEN);
    struct pair stackpairs[64], *pairs = stackpairs;
    size_t n = 0, total = 0, in = 0, used = 0;
    char *start, *d;
    int ret = -1;

    for (size_t l = 0; l < nlists; l++) {
        total += lists[l]->count;
        for (size_t i = 0; i < lists[l]->count; i++)
            in = st_add(in, st_add(lists[l]->params[i].name.len, lists[l]->params[i].value.len));
    }
    if (total > sizeof(stackpairs) / sizeof(stackpairs[0]))
        pairs = xmalloc(st_mult(total, sizeof(*pairs)));
    /*
     * Every name and value encoded twice at once, into room reserved once.
     * Sorting the twice-encoded strings gives the order RFC 5849 asks of the
     * once-encoded ones: the second encoding only turns "%" into "%25", and
     * "%" sorts below every byte it can stand next to (unreserved bytes and
     * hex digits), so the first difference and every prefix stay as they were.
     */
    start = buf_append_space(&enc, st_mult(in, 5));
    if (!start) {
        buf_check(&enc, "signature base string", err);
        goto out;
    }
    d = start;
    for (size_t l = 0; l < nlists; l++) {
        const struct form *f = lists[l];

        for (size_t i = 0; i < f->count; i++) {
            struct str name = f->params[i].name;

            if (str_eq_cstr(name, "oauth_signature"))
                continue;
            pairs[n].name_off = (size_t)(d - start);
            d = encode_twice(d, name);
            pairs[n].name_len = (size_t)(d - start) - pairs[n].name_off;
            pairs[n].value_off = (size_t)(d - start);
            d = encode_twice(d, f->params[i].value);
            pairs[n].value_len = (size_t)(d - start) - pairs[n].value_off;
            used += pairs[n].name_len + pairs[n].value_len;
            n++;
        }
    }
    sort_base = start;
    qsort(pairs, n, sizeof(*pairs), cmp_pair);

    for (size_t i = 0; i < method.len; i++) {
        char c = method.ptr[i];

        buf_addch(out, (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c);
    }
    buf_addch(out, '&');
    form_encode_rfc3986(out, base_uri);
    buf_addch(out, '&');
    /* name%3Dvalue, joined by %26 ("=" and "&" encoded) */
    d = buf_append_space(out, n ? used + 6 * n - 3 : 0);
    if (d) {
        for (size_t i = 0; i < n; i++) {
            if (i) {
                memcpy(d, "%26", 3);
                d += 3;
            }
            memcpy(d, start + pairs[i].name_off, pairs[i].name_len);
            d += pairs[i].name_len;
            memcpy(d, "%3D", 3);
            d += 3;
            memcpy(d, start + pairs[i].value_off, pairs[i].value_len);
            d += pairs[i].value_len;
        }
    }
    ret = buf_check(out, "signature base string", err);
out:
    if (pairs != stackpairs)
        free(pairs);
    buf_release(&enc);
    return ret;
}

int lti_oauth_sign(struct buf *out, enum lti_sig_method m, struct str base,
                   struct str consumer_secret, struct str token_secret, struct err *err)
{
    struct buf key = BUF_INIT(4 * (LIMIT_CONSUMER_SECRET_LEN + 1) * 2);
    int ret = 0;

    form_encode_rfc3986(&key, consumer_secret);
    buf_addch(&key, '&');
    form_encode_rfc3986(&key, token_secret);
    if (buf_check(&key, "consumer secret", err) < 0) {
        ret = -1;
        goto out;
    }
    {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
        const EVP_MD *md = m == LTI_SIG_HMAC_SHA1 ? util_md_sha1() : util_md_sha256();

        if (!util_hmac(md, key.ptr, key.len, base.ptr, base.len, mac, &maclen)) {
            ret = err_set(err, ERR_INTERNAL, "signing failed");
            goto out;
        }
        EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
        buf_addstr(out, b64);
    }
    ret = buf_check(out, "signature", err);
out:
    /* the key holds the secret: wipe it before the memory goes back */
    if (key.alloc)
        OPENSSL_cleanse(key.ptr, key.alloc);
    buf_release(&key);
    return ret;
}

int lti_oauth_verify(const struct lti_oauth *o, struct str method, struct str base_uri,
                     const struct form *const *lists, size_t nlists, struct str consumer_secret,
                     struct err *err)
{
    struct buf base = BUF_INIT(LIMIT_BASE_STRING_LEN);
    struct buf sig = BUF_INIT(128);
    int ret = 0;

    if (lti_oauth_base_string(&base, method, base_uri, lists, nlists, err) < 0 ||
        lti_oauth_sign(&sig, o->method, buf_view(&base), consumer_secret, STR_LIT(""), err) < 0) {
        ret = -1;
        goto out;
    }
    if (!util_ct_equal(sig.ptr, sig.len, o->signature.ptr, o->signature.len))
        ret = err_set(err, ERR_UNAUTHORIZED, "signature does not match");
out:
    buf_release(&base);
    buf_release(&sig);
    return ret;
}

/*
 * Canvas's launches, when the tool's launch URL has a query: Canvas copies
 * each query parameter into the form it posts (unless the form has that
 * name already) and signs the form alone, over the URL without its query
 * (Canvas's lib/lti/security.rb, generate_params_deprecated, which says so
 * in its comments). The browser then posts the form to the URL with its
 * query, so RFC 5849 counts those pairs twice and the signature does not
 * match. Only when the strict reading fails, and only for pairs that stand
 * in both places with the same name and value, each query pair is matched
 * with one body pair and counted once; anything else counts as it is.
 */
int lti_oauth_verify_launch(const struct lti_oauth *o, struct str base_uri,
                            const struct form *query, const struct form *body,
                            struct str consumer_secret, struct err *err)
{
    const struct form *lists[2] = { query, body };
    struct form once = { NULL, 0 };
    bool *used = NULL;
    struct err strict = ERR_INIT;
    int ret;

    if (lti_oauth_verify(o, STR_LIT("POST"), base_uri, lists, 2, consumer_secret, &strict) == 0)
        return 0;
    if (strict.code != ERR_UNAUTHORIZED || query->count == 0)
        goto refuse;
    used = xcalloc(body->count, sizeof(*used));
    once.params = xcalloc(query->count, sizeof(*once.params));
    for (size_t i = 0; i < query->count; i++) {
        const struct form_param *q = &query->params[i];
        size_t j;

        for (j = 0; j < body->count; j++) {
            if (!used[j] && str_eq(body->params[j].name, q->name) &&
                str_eq(body->params[j].value, q->value))
                break;
        }
        if (j < body->count)
            used[j] = true; /* Canvas's copy: the body's pair stands for both */
        else
            once.params[once.count++] = *q;
    }
    if (once.count == query->count)
        goto refuse; /* nothing was copied: the strict answer stands */
    lists[0] = &once;
    ret = lti_oauth_verify(o, STR_LIT("POST"), base_uri, lists, 2, consumer_secret, err);
    free(once.params);
    free(used);
    return ret;
refuse:
    free(once.params);
    free(used);
    return err_set(err, strict.code, "%s", strict.msg);
}

int lti_oauth_check_time(const struct lti_oauth *o, int64_t now, int64_t window, struct err *err)
{
    if (o->ts < now - window || o->ts > now + window)
        return err_set(err, ERR_REPLAY,
                       "launch timestamp is more than %" PRId64 " seconds from the server's clock",
                       window);
    return 0;
}

/* ---- the Authorization header (RFC 5849 section 3.5.1) -------------------- */

int lti_oauth_header_parse(struct arena *arena, struct str h, struct form *out, struct err *err)
{
    const char *p = h.ptr, *end = h.ptr + h.len;
    size_t cap = 1, n = 0;

    out->params = NULL;
    out->count = 0;
    if (h.len < 6 || !str_case_eq_cstr((struct str){ p, 5 }, "OAuth") ||
        (p[5] != ' ' && p[5] != '\t'))
        return err_set(err, ERR_UNAUTHORIZED, "the Authorization header is not OAuth");
    for (const char *q = p; q < end; q++)
        cap += *q == ',';
    if (cap > LIMIT_FORM_PARAMS)
        return err_set(err, ERR_TOOBIG, "the Authorization header has too many parameters");
    out->params = arena_alloc(arena, st_mult(cap, sizeof(*out->params)));
    p += 6;
    for (;;) {
        const char *name, *eq, *v, *close;
        struct form_param *fp;

        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            break;
        name = p;
        eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq == name || eq + 1 >= end || eq[1] != '"')
            return err_set(err, ERR_INVALID, "malformed Authorization header parameter");
        v = eq + 2;
        close = memchr(v, '"', (size_t)(end - v));
        if (!close)
            return err_set(err, ERR_INVALID, "unterminated Authorization header value");
        p = close + 1;
        if (p < end && *p != ',' && *p != ' ' && *p != '\t')
            return err_set(err, ERR_INVALID, "malformed Authorization header parameter");
        if (n == cap)
            return err_set(err, ERR_TOOBIG, "the Authorization header has too many parameters");
        fp = &out->params[n];
        if (form_pct_decode(arena, name, (size_t)(eq - name), false, &fp->name, NULL) < 0 ||
            form_pct_decode(arena, v, (size_t)(close - v), false, &fp->value, NULL) < 0)
            return err_set(err, ERR_INVALID,
                           "malformed percent-encoding in the Authorization header");
        if (form_check_name(fp->name, err) < 0)
            return -1;
        /* realm is not a signed parameter (RFC 5849 3.4.1.3.1) */
        if (str_eq_cstr(fp->name, "realm"))
            continue;
        n++;
    }
    out->count = n;
    return 0;
}

int lti_oauth_body_hash(struct buf *out, enum lti_sig_method m, const void *body, size_t len,
                        struct err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];

    if (!EVP_Digest(body, len, md, &mdlen,
                    m == LTI_SIG_HMAC_SHA1 ? util_md_sha1() : util_md_sha256(), NULL))
        return err_set(err, ERR_INTERNAL, "hashing the body failed");
    EVP_EncodeBlock((unsigned char *)b64, md, (int)mdlen);
    buf_addstr(out, b64);
    return buf_check(out, "body hash", err);
}

int lti_oauth_authorization(struct buf *out, const struct lti_oauth_signer *s, struct err *err)
{
    struct arena a = ARENA_INIT;
    struct buf uri = BUF_INIT(LIMIT_LTI_URL_LEN + 16), base = BUF_INIT(LIMIT_BASE_STRING_LEN);
    struct buf sig = BUF_INIT(128);
    struct str query;
    struct form qf = { 0 }, of;
    struct form_param op[7];
    char nonce[33], ts[24];
    const struct form *lists[2];
    int ret = -1;

    if (lti_url_normalize(&uri, s->url, &query, err) < 0)
        goto out;
    if (str_present(query) && query.len &&
        form_parse(&a, query.ptr, query.len, LIMIT_FORM_PARAMS, &qf, err) < 0)
        goto out;
    if (str_present(s->nonce))
        snprintf(nonce, sizeof(nonce), "%.*s", (int)(s->nonce.len > 32 ? 32 : s->nonce.len),
                 s->nonce.ptr);
    else if (util_random_hex(nonce, 16, err) < 0)
        goto out;
    snprintf(ts, sizeof(ts), "%" PRId64, s->timestamp ? s->timestamp : util_now());
    of.params = op;
    of.count = 0;
    op[of.count++] = (struct form_param){ STR_LIT("oauth_consumer_key"), s->consumer_key };
    op[of.count++] = (struct form_param){ STR_LIT("oauth_nonce"), str_from_cstr(nonce) };
    op[of.count++] = (struct form_param){ STR_LIT("oauth_signature_method"),
                                          s->method == LTI_SIG_HMAC_SHA1 ? STR_LIT("HMAC-SHA1")
                                                                         : STR_LIT("HMAC-SHA256") };
    op[of.count++] = (struct form_param){ STR_LIT("oauth_timestamp"), str_from_cstr(ts) };
    op[of.count++] = (struct form_param){ STR_LIT("oauth_version"), STR_LIT("1.0") };
    if (str_present(s->body_hash))
        op[of.count++] = (struct form_param){ STR_LIT("oauth_body_hash"), s->body_hash };
    lists[0] = &qf;
    lists[1] = &of;
    if (lti_oauth_base_string(&base, STR_LIT("POST"), buf_view(&uri), lists, 2, err) < 0 ||
        lti_oauth_sign(&sig, s->method, buf_view(&base), s->consumer_secret, STR_LIT(""), err) < 0)
        goto out;
    op[of.count++] = (struct form_param){ STR_LIT("oauth_signature"), buf_view(&sig) };
    buf_addstr(out, "OAuth realm=\"\"");
    for (size_t i = 0; i < of.count; i++) {
        buf_addch(out, ',');
        form_encode_rfc3986(out, op[i].name);
        buf_addstr(out, "=\"");
        form_encode_rfc3986(out, op[i].value);
        buf_addch(out, '"');
    }
    ret = buf_check(out, "Authorization header", err);
out:
    buf_release(&uri);
    buf_release(&base);
    buf_release(&sig);
    arena_release(&a);
    return ret;
}
