/*
 * base/util.c - clocks, OpenSSL randomness and hashing, escaping.
 */
#include "base/base.h"

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
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

int util_random(unsigned char *p, size_t n, struct err *err)
{
    if (n > INT_MAX || RAND_bytes(p, (int)n) != 1)
        return err_set(err, ERR_INTERNAL, "random number generator failed");
    return 0;
}

int util_random_hex(char *out, size_t bytes, struct err *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];

    if (bytes > sizeof(raw))
        BUG("util_random_hex: %zu bytes", bytes);
    if (util_random(raw, bytes, err) < 0)
        return -1;
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * bytes] = '\0';
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

static void md_fetch(void)
{
    md_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
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
