/*
 * base/util.c - clocks, OpenSSL randomness and hashing, escaping.
 */
#include "base/base.h"

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

int64_t util_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t util_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void util_iso8601(int64_t t, char out[static 21])
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * Small requests are served from a per-thread buffer that RAND_bytes fills
 * 1 KiB at a time. Each RAND_bytes call costs a getpid() system call (the
 * DRBG's fork check) and its own locking: with two secrets a launch, that
 * was 2.8 us a launch on the HTTP threads, as much as the OAuth signature.
 * A byte handed out is wiped from the buffer at once, so the buffer never
 * holds a secret already given away; a fork (pthread_atfork, child side)
 * empties the forking thread's buffer, the only one the child runs with, so
 * parent and child never share bytes.
 */
#define RANDOM_BUF 1024

static _Thread_local unsigned char random_buf[RANDOM_BUF];
static _Thread_local size_t random_avail; /* unused bytes, at the end of random_buf */
static pthread_once_t random_once = PTHREAD_ONCE_INIT;

static void random_forked(void)
{
    OPENSSL_cleanse(random_buf, sizeof(random_buf));
    random_avail = 0;
}

static void random_setup(void)
{
    pthread_atfork(NULL, NULL, random_forked);
}

int util_random(unsigned char *p, size_t n, struct err *err)
{
    pthread_once(&random_once, random_setup);
    if (n > RANDOM_BUF / 4) {
        if (n > INT_MAX || RAND_bytes(p, (int)n) != 1)
            return err_set(err, ERR_INTERNAL, "random number generator failed");
        return 0;
    }
    if (random_avail < n) {
        if (RAND_bytes(random_buf, RANDOM_BUF) != 1) {
            random_forked();
            return err_set(err, ERR_INTERNAL, "random number generator failed");
        }
        random_avail = RANDOM_BUF;
    }
    unsigned char *from = random_buf + RANDOM_BUF - random_avail;

    memcpy(p, from, n);
    OPENSSL_cleanse(from, n);
    random_avail -= n;
    return 0;
}

void util_hex(char *out, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int util_random_hex(char *out, size_t bytes, struct err *err)
{
    unsigned char raw[64];

    if (bytes > sizeof(raw))
        BUG("util_random_hex: %zu bytes", bytes);
    if (util_random(raw, bytes, err) < 0)
        return -1;
    util_hex(out, raw, bytes);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

/*
 * OpenSSL 3 looks a digest up in its provider store (under a process-wide
 * read lock) on every SHA256(), HMAC() or EVP_DigestInit() given a built-in
 * EVP_MD; an EVP_MD fetched once is used as it is. Every launch hashes and
 * signs several times, so the two digests it uses are fetched once.
 */
static EVP_MD *md_sha1, *md_sha256;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

/*
 * HMAC() is worse: it fetches the MAC and then its digest by name on every
 * call. A context set up once per digest (no key yet) is copied and keyed
 * instead; copying reads it only, so threads share it.
 */
static EVP_MAC_CTX *hmac_sha1, *hmac_sha256;

static EVP_MAC_CTX *hmac_template(EVP_MAC *mac, const char *digest)
{
    EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_end(),
    };

    if (c && !EVP_MAC_CTX_set_params(c, params)) {
        EVP_MAC_CTX_free(c);
        c = NULL;
    }
    return c;
}

static void md_fetch(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

    md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    hmac_sha1 = hmac_template(mac, "SHA1");
    hmac_sha256 = hmac_template(mac, "SHA256");
    EVP_MAC_free(mac); /* the contexts hold their own reference */
}

bool util_hmac(const EVP_MD *md, const void *key, size_t keylen, const void *p, size_t n,
               unsigned char *out, unsigned int *outlen)
{
    EVP_MAC_CTX *tmpl, *c;
    size_t len = 0;
    bool ok;

    pthread_once(&md_once, md_fetch);
    tmpl = !md ? NULL : md == md_sha1 ? hmac_sha1 : md == md_sha256 ? hmac_sha256 : NULL;
    if (!tmpl) /* another digest, or a template OpenSSL could not make */
        return HMAC(md, key, (int)keylen, p, n, out, outlen) != NULL;
    c = EVP_MAC_CTX_dup(tmpl);
    ok = c && EVP_MAC_init(c, key, keylen, NULL) && EVP_MAC_update(c, p, n) &&
         EVP_MAC_final(c, out, &len, EVP_MAX_MD_SIZE);
    EVP_MAC_CTX_free(c);
    *outlen = (unsigned int)len;
    return ok;
}

const EVP_MD *util_md_sha1(void)
{
    pthread_once(&md_once, md_fetch);
    return md_sha1 ? md_sha1 : EVP_sha1();
}

const EVP_MD *util_md_sha256(void)
{
    pthread_once(&md_once, md_fetch);
    return md_sha256 ? md_sha256 : EVP_sha256();
}

void util_sha256(const void *p, size_t n, unsigned char out[static 32])
{
    if (!EVP_Digest(p, n, out, NULL, util_md_sha256(), NULL))
        SHA256(p, n, out);
}

bool util_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    /* lengths of signatures and tokens are public; their bytes are not */
    if (alen != blen)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int util_html_escape(struct buf *out, struct str s)
{
    size_t from = 0;

    if (!s.ptr)
        s = STR_LIT(""); /* the null view: NULL + 0 below would be undefined behaviour */

    for (size_t i = 0; i < s.len; i++) {
        const char *ent;

        switch (s.ptr[i]) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            continue;
        }
        buf_add(out, s.ptr + from, i - from);
        buf_addstr(out, ent);
        from = i + 1;
    }
    return buf_add(out, s.ptr + from, s.len - from);
}
