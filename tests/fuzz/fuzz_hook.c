/*
 * tests/fuzz/fuzz_hook.c - a BadgeKit webhook as it arrives at POST
 * /hooks/badgekit/NAME: its Authorization header and its raw body
 * (backend_badgekit_hook_verify, backend_badgekit_hook_parse).
 *
 * The input's first line is the header, the rest the body. Both go to the
 * check as they are (a fuzzer does not find a good HMAC: this is the
 * refusals' path). Then the body is signed here as BadgeKit signs it (HS256
 * over base64url {typ, alg} . base64url {body: {alg: sha256, hash}}) with
 * the header's first byte choosing BadgeKit's "hs256" or "HS256", and
 * promises are checked: that token verifies over exactly that body; the same
 * token over the body with one byte changed, or with another secret, does
 * not; and whatever the parser makes of a body, its strings end within
 * their arrays and an award names an http(s) URL.
 */
#include "tests/fuzz/fuzz.h"
#include "backends/backends.h"

#include <jansson.h>
#include <openssl/evp.h>

#define SECRET "fuzz-hook-secret"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    json_object_seed(1);
    return 0;
}

/* base64url without padding, as jws writes it */
static void add_b64url(struct buf *b, const void *p, size_t n)
{
    struct buf t = BUF_INIT(4 * n + 16);

    buf_addbase64(&t, p, n);
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];

        if (c == '=')
            break;
        buf_addch(b, c == '+' ? '-' : c == '/' ? '_' : c);
    }
    buf_release(&t);
}

static void sign(struct buf *auth, const void *body, size_t len, bool lower, const char *secret)
{
    unsigned char digest[32], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char hex[65], claims[128];
    struct buf signing = BUF_INIT(1024);
    const char *head =
        lower ? "{\"typ\":\"JWT\",\"alg\":\"hs256\"}" : "{\"typ\":\"JWT\",\"alg\":\"HS256\"}";

    util_sha256(body, len, digest);
    util_hex(hex, digest, 32);
    snprintf(claims, sizeof(claims), "{\"body\":{\"alg\":\"sha256\",\"hash\":\"%s\"}}", hex);
    add_b64url(&signing, head, strlen(head));
    buf_addch(&signing, '.');
    add_b64url(&signing, claims, strlen(claims));
    FUZZ_CHECK(util_hmac(util_md_sha256(), secret, strlen(secret), signing.ptr, signing.len, mac,
                         &maclen));
    buf_addstr(auth, "JWT token=\"");
    buf_add(auth, signing.ptr, signing.len);
    buf_addch(auth, '.');
    add_b64url(auth, mac, maclen);
    buf_addch(auth, '"');
    buf_release(&signing);
}

static void check_parsed(const char *body, size_t len)
{
    struct backend_badgekit_hook h;
    struct err err = ERR_INIT;

    if (backend_badgekit_hook_parse(body, len, &h, &err) < 0) {
        FUZZ_CHECK(err.code == ERR_INVALID);
        return;
    }
    FUZZ_CHECK(memchr(h.uid, '\0', sizeof(h.uid)) && memchr(h.badge, '\0', sizeof(h.badge)) &&
               memchr(h.email, '\0', sizeof(h.email)) &&
               memchr(h.assertion_url, '\0', sizeof(h.assertion_url)));
    if (h.action == BADGEKIT_HOOK_AWARD || h.action == BADGEKIT_HOOK_REVOKE)
        FUZZ_CHECK(h.uid[0]);
    if (h.action == BADGEKIT_HOOK_AWARD)
        FUZZ_CHECK(strncmp(h.assertion_url, "https://", 8) == 0 ||
                   strncmp(h.assertion_url, "http://", 7) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    char *header = xmemdupz(data, hlen);
    const char *body = nl ? (const char *)nl + 1 : "";
    size_t len = nl ? size - hlen - 1 : 0;
    char *changed = xmemdupz(body, len);
    struct buf auth = BUF_INIT(LIMIT_BADGEKIT_HOOK_TOKEN);
    struct err err = ERR_INIT;

    /* as it came: refused (or, by a miracle, accepted) without a crash */
    if (backend_badgekit_hook_verify(SECRET, header, body, len, &err) < 0)
        FUZZ_CHECK(err.code == ERR_UNAUTHORIZED);
    /* signed as BadgeKit signs: accepted, and only for that body and that secret */
    sign(&auth, body, len, hlen && (data[0] & 1), SECRET);
    err_clear(&err);
    FUZZ_CHECK(backend_badgekit_hook_verify(SECRET, auth.ptr, body, len, &err) == 0);
    FUZZ_CHECK(backend_badgekit_hook_verify(SECRET "x", auth.ptr, body, len, &err) < 0);
    if (len) {
        changed[hlen % len] ^= 0x20;
        err_clear(&err);
        FUZZ_CHECK(backend_badgekit_hook_verify(SECRET, auth.ptr, changed, len, &err) < 0);
        FUZZ_CHECK(err.code == ERR_UNAUTHORIZED);
    }
    check_parsed(body, len);
    buf_release(&auth);
    free(changed);
    free(header);
    return 0;
}
