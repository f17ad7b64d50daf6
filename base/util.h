/*
 * base/util.h - small helpers every module needs: clocks, randomness, hex,
 * constant-time comparison, HTML escaping into a buffer.
 */
#ifndef BASE_UTIL_H
#define BASE_UTIL_H

/* Seconds since the epoch (wall clock, for timestamps compared with other machines). */
int64_t util_now(void);
/* A monotonic clock in nanoseconds, for durations. */
int64_t util_mono_ns(void);
/* Formats `t` as ISO 8601 UTC ("2026-11-23T10:00:00Z") into `out` (at least 21 bytes). */
void util_iso8601(int64_t t, char out[static 21]);

/*
 * Fills `p` with `n` cryptographically random bytes (OpenSSL, through a
 * per-thread buffer for small requests); -1 if the generator fails. Safe
 * across fork(): parent and child never get the same bytes.
 */
int util_random(unsigned char *p, size_t n, struct err *err);
/*
 * Writes `bytes` random bytes (at most 64) as lower-case hex into `out`, which
 * holds 2 * bytes + 1; for secrets and tokens.
 */
int util_random_hex(char *out, size_t bytes, struct err *err);
/* Writes `n` bytes as lower-case hex into `out`, which holds 2 * n + 1. */
void util_hex(char *out, const unsigned char *p, size_t n);
/* SHA-256 of (p, n) into `out`. */
void util_sha256(const void *p, size_t n, unsigned char out[static 32]);
/* SHA-1 and SHA-256 fetched from OpenSSL's provider once, for HMAC() and EVP_Digest(). */
typedef struct evp_md_st EVP_MD;
const EVP_MD *util_md_sha1(void);
const EVP_MD *util_md_sha256(void);
/*
 * HMAC of (p, n) with `md` (util_md_sha1 or util_md_sha256) into `out`, which
 * holds EVP_MAX_MD_SIZE; its length into `outlen`. False if OpenSSL failed.
 */
bool util_hmac(const EVP_MD *md, const void *key, size_t keylen, const void *p, size_t n,
               unsigned char *out, unsigned int *outlen);
/* Compares two byte strings in time that depends only on their lengths. */
bool util_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/*
 * Appends `s` HTML-escaped (& < > " ' as entities), safe in text and in
 * quoted attribute values.
 */
int util_html_escape(struct buf *out, struct str s);

#endif
