/*
 * backends/badgekit_hook.c - what a BadgeKit API webhook is: the check of
 * its signature, and what its body says.
 *
 * BadgeKit (app/models/webhook.js) posts JSON.stringify(data) with
 * `Authorization: JWT token="H.P.S"`: a JWS whose header is {typ: JWT,
 * alg: hs256} (lower case: jws 0.2 reads the name case-insensitively),
 * whose payload is only {body: {alg: "sha256", hash: hex SHA-256 of the
 * body}}, signed with the webhooks row's secret. No expiry, path, method
 * or nonce: a hook can be replayed byte for byte, which is why applying one
 * must be idempotent (awards/hooks.c). It sends each hook once and ignores
 * the answer.
 *
 * The check is written here over OpenSSL's HMAC rather than with libjwt:
 * the algorithm must be ours (HS256), never the one the token's header
 * names (`none` and the other HMACs are refused, whatever they would
 * verify to), the MAC is compared in constant time over its decoded bytes,
 * and the claim that matters is a hash of the raw body as it arrived,
 * which no JWT library checks. The order: the header's form, the token's
 * three parts, the algorithm, the signature, then the body's hash; nothing
 * of the payload is believed before the signature is.
 */
#include "base/base.h"
#include "backends/backends.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <strings.h>

/* A token's part: base64url without padding, as jws makes it; false for any other byte. */
static bool b64url_decode(struct str in, unsigned char *out, size_t cap, size_t *outlen)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];
        unsigned v;

        if (c >= 'A' && c <= 'Z')
            v = (unsigned)(c - 'A');
        else if (c >= 'a' && c <= 'z')
            v = (unsigned)(c - 'a') + 26;
        else if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0') + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return false;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return false;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* 1 leftover character (6 bits) is no whole byte: not base64 */
    if (bits >= 6)
        return false;
    *outlen = n;
    return true;
}

/* A part decoded and read as a JSON object (NULL when it is neither). */
static json_t *part_json(struct str part)
{
    unsigned char buf[LIMIT_BADGEKIT_HOOK_TOKEN];
    size_t len;
    json_t *j;

    if (!b64url_decode(part, buf, sizeof(buf), &len))
        return NULL;
    j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* A hex digit's value, or -1. */
static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int backend_badgekit_hook_verify(const char *secret, const char *authorization, const void *body,
                                 size_t len, struct err *err)
{
    static const char prefix[] = "JWT token=\"";
    struct str auth = str_from_cstr(authorization);
    struct str tok, parts[3];
    json_t *head = NULL, *claims = NULL;
    unsigned char sig[64], mac[EVP_MAX_MD_SIZE], digest[32], given[32];
    unsigned int maclen = 0;
    size_t siglen = 0;
    const char *alg, *halg, *hash;
    int ret = -1;

    if (!secret || !secret[0])
        return err_set(err, ERR_FORBIDDEN,
                       "hooks are off for this backend: its webhook_secret is empty");
    if (!authorization)
        return err_set(err, ERR_UNAUTHORIZED, "the hook is not signed: no Authorization header");
    /* [mw] getAuthToken's form: the whole header, the token between the quotes */
    if (auth.len <= sizeof(prefix) || strncmp(auth.ptr, prefix, sizeof(prefix) - 1) != 0 ||
        auth.ptr[auth.len - 1] != '"' || auth.len > LIMIT_BADGEKIT_HOOK_TOKEN)
        return err_set(err, ERR_UNAUTHORIZED,
                       "the hook's Authorization header is not of the form JWT token=\"...\"");
    tok = (struct str){ auth.ptr + sizeof(prefix) - 1, auth.len - sizeof(prefix) };
    for (size_t i = 0, start = 0, k = 0; i <= tok.len; i++) {
        if (i < tok.len && tok.ptr[i] != '.')
            continue;
        if (k == 3)
            return err_set(err, ERR_UNAUTHORIZED, "the hook's token is not a JWS of three parts");
        parts[k++] = (struct str){ tok.ptr + start, i - start };
        start = i + 1;
        if (i == tok.len && k != 3)
            return err_set(err, ERR_UNAUTHORIZED, "the hook's token is not a JWS of three parts");
    }
    head = part_json(parts[0]);
    if (!head) {
        err_set(err, ERR_UNAUTHORIZED, "the hook's token header is not base64url JSON");
        goto out;
    }
    alg = json_string_value(json_object_get(head, "alg"));
    /* HS256 only, in either case (BadgeKit writes "hs256"); `none` and the others are refused */
    if (!alg || strcasecmp(alg, "HS256") != 0) {
        err_set(err, ERR_UNAUTHORIZED, "the hook's token is signed with '%.32s', not HS256",
                alg ? alg : "(none given)");
        goto out;
    }
    if (!b64url_decode(parts[2], sig, sizeof(sig), &siglen) ||
        !util_hmac(util_md_sha256(), secret, strlen(secret), tok.ptr,
                   parts[1].len + 1 + parts[0].len, mac, &maclen) ||
        !util_ct_equal(sig, siglen, mac, maclen)) {
        err_set(err, ERR_UNAUTHORIZED, "the hook's signature does not match its webhook_secret");
        goto out;
    }
    claims = part_json(parts[1]);
    halg = json_string_value(json_object_get(json_object_get(claims, "body"), "alg"));
    hash = json_string_value(json_object_get(json_object_get(claims, "body"), "hash"));
    if (!halg || !hash || strcmp(halg, "sha256") != 0) {
        err_set(err, ERR_UNAUTHORIZED, "the hook's token does not carry the body's sha256 hash");
        goto out;
    }
    util_sha256(body ? body : "", len, digest);
    {
        bool hex = strlen(hash) == 64;

        for (size_t i = 0; hex && i < 32; i++) {
            int hi = hexval(hash[2 * i]), lo = hexval(hash[2 * i + 1]);

            hex = hi >= 0 && lo >= 0;
            given[i] = (unsigned char)(hex ? hi << 4 | lo : 0);
        }
        if (!hex || !util_ct_equal(given, 32, digest, 32)) {
            err_set(err, ERR_UNAUTHORIZED, "the hook's body is not the one its token signs");
            goto out;
        }
    }
    ret = 0;
out:
    json_decref(head);
    json_decref(claims);
    return ret;
}

/* Copies a string member into `out` (cap bytes with the NUL); false when too long. */
static bool take(json_t *o, const char *key, char *out, size_t cap)
{
    json_t *j = json_object_get(o, key);
    const char *v = json_string_value(j);
    size_t n = v ? json_string_length(j) : 0;

    out[0] = '\0';
    if (!v)
        return true;
    /* a NUL inside (JSON's \u0000) would cut the text short of what was signed */
    if (n >= cap || strlen(v) != n)
        return false;
    memcpy(out, v, n + 1);
    return true;
}

int backend_badgekit_hook_parse(const void *body, size_t len, struct backend_badgekit_hook *out,
                                struct err *err)
{
    json_error_t je;
    json_t *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
    json_t *issued;
    char action[32];
    int ret = -1;

    memset(out, 0, sizeof(*out));
    if (!doc || !json_is_object(doc)) {
        err_set(err, ERR_INVALID, "the hook is not a JSON object");
        goto out;
    }
    if (!take(doc, "action", action, sizeof(action)) || !action[0]) {
        err_set(err, ERR_INVALID, "the hook names no action");
        goto out;
    }
    if (strcmp(action, "award") == 0)
        out->action = BADGEKIT_HOOK_AWARD;
    else if (strcmp(action, "revoke") == 0)
        out->action = BADGEKIT_HOOK_REVOKE;
    else if (strcmp(action, "review") == 0)
        out->action = BADGEKIT_HOOK_REVIEW;
    else
        out->action = BADGEKIT_HOOK_OTHER;
    if (out->action != BADGEKIT_HOOK_AWARD && out->action != BADGEKIT_HOOK_REVOKE) {
        ret = 0;
        goto out;
    }
    /* an award or a revoke is about one instance: its slug (`uid`) is required */
    if (!take(doc, "uid", out->uid, sizeof(out->uid)) || !out->uid[0]) {
        err_set(err, ERR_INVALID, "the %s hook has no instance uid", action);
        goto out;
    }
    if (!take(json_object_get(doc, "badge"), "slug", out->badge, sizeof(out->badge)) ||
        !take(doc, "email", out->email, sizeof(out->email))) {
        err_set(err, ERR_INVALID, "the %s hook's badge slug or email is too long", action);
        goto out;
    }
    if (out->action == BADGEKIT_HOOK_AWARD) {
        if (!take(doc, "assertionUrl", out->assertion_url, sizeof(out->assertion_url)) ||
            !(strncmp(out->assertion_url, "https://", 8) == 0 ||
              strncmp(out->assertion_url, "http://", 7) == 0)) {
            err_set(err, ERR_INVALID, "the award hook has no http(s) assertionUrl");
            goto out;
        }
        /* [ri] issuedOn: Unix seconds; anything else is left to the receiver's clock */
        issued = json_object_get(doc, "issuedOn");
        if (json_is_integer(issued) && json_integer_value(issued) > 0)
            out->issued_on = json_integer_value(issued);
        else if (json_is_real(issued) && json_real_value(issued) > 0 &&
                 json_real_value(issued) < 1e12)
            out->issued_on = (int64_t)json_real_value(issued);
    }
    ret = 0;
out:
    json_decref(doc);
    return ret;
}
