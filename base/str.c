/*
 * base/str.c - string views: comparisons, UTF-8 validation and number
 * parsing without atoi().
 */
#include "base/base.h"

#include <strings.h>

struct str str_from_cstr(const char *s)
{
    if (!s)
        return STR_NULL;
    return (struct str){ s, strlen(s) };
}

bool str_eq(struct str a, struct str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool str_eq_cstr(struct str a, const char *b)
{
    return str_eq(a, str_from_cstr(b));
}

bool str_case_eq_cstr(struct str a, const char *b)
{
    size_t n = strlen(b);

    return a.len == n && (n == 0 || strncasecmp(a.ptr, b, n) == 0);
}

bool str_starts_with(struct str s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

bool str_has_ctl(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

bool str_utf8_valid(struct str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t i = 0;

    while (i < s.len) {
        unsigned char c = p[i];
        uint32_t cp, min;
        size_t n;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false; /* a continuation byte first, or 0xf8..0xff */
        }
        if (s.len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* overlong forms, UTF-16 surrogates and code points past Unicode */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

int str_to_i64(struct str s, int64_t min, int64_t max, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    /* the magnitude limit for the sign at hand; unsigned so that INT64_MIN fits */
    uint64_t lim;

    if (!s.ptr || s.len == 0)
        return -1;
    if (s.ptr[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == s.len)
        return -1;
    lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < s.len; i++) {
        unsigned d;

        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        d = (unsigned)(s.ptr[i] - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    {
        /* the cast through uint64_t avoids undefined behaviour for INT64_MIN */
        int64_t r = neg ? (int64_t)(0 - v) : (int64_t)v;

        if (r < min || r > max)
            return -1;
        *out = r;
    }
    return 0;
}

struct str str_trim(struct str s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

size_t str_slug(char *out, size_t outlen, size_t max, const char *a, const char *b)
{
    const char *parts[2] = { a, b };
    size_t n = 0;
    bool dash = false;

    if (outlen == 0)
        return 0;
    for (int p = 0; p < 2; p++) {
        for (const char *s = parts[p]; s && *s && n + 2 < outlen && n < max; s++) {
            char c = *s;

            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
                if (dash && n)
                    out[n++] = '-';
                out[n++] = c;
                dash = false;
            } else {
                dash = true;
            }
        }
        dash = true;
    }
    out[n] = '\0';
    return n;
}
