/*
 * base/buf.c - bounded buffers: grow geometrically, never past the cap.
 */
#include "base/base.h"

#include <limits.h>

#include <openssl/evp.h>

static char empty_buf[1];

void buf_init(struct buf *b, size_t max)
{
    b->ptr = empty_buf;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
    b->toobig = false;
}

void buf_release(struct buf *b)
{
    if (b->alloc)
        free(b->ptr);
    buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->alloc)
        b->ptr[0] = '\0';
    b->toobig = false;
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->alloc ? b->ptr : xcalloc(1, 1);

    if (len)
        *len = b->len;
    buf_init(b, b->max);
    return p;
}

static int grow(struct buf *b, size_t extra)
{
    size_t want;

    if (b->toobig || extra > b->max - b->len) {
        b->toobig = true;
        return -1;
    }
    want = b->len + extra + 1;
    if (want > b->alloc) {
        size_t n = b->alloc ? b->alloc : 64;

        while (n < want)
            n = st_mult(n, 2);
        if (n > b->max + 1)
            n = b->max + 1;
        if (b->alloc) {
            b->ptr = xrealloc(b->ptr, n);
        } else {
            b->ptr = xmalloc(n);
            b->ptr[0] = '\0';
        }
        b->alloc = n;
    }
    return 0;
}

int buf_add(struct buf *b, const void *data, size_t len)
{
    if (grow(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->ptr + b->len, data, len);
    b->len += len;
    b->ptr[b->len] = '\0';
    return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_addch(struct buf *b, char c)
{
    return buf_add(b, &c, 1);
}

int buf_addview(struct buf *b, struct str s)
{
    return buf_add(b, s.ptr, s.len);
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || grow(b, (size_t)n) < 0) {
        b->toobig = true;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *buf_append_space(struct buf *b, size_t n)
{
    char *p;

    if (grow(b, n) < 0)
        return NULL;
    p = b->ptr + b->len;
    b->len += n;
    b->ptr[b->len] = '\0';
    return p;
}

int buf_addhex(struct buf *b, const unsigned char *data, size_t len)
{
    if (grow(b, st_mult(len, 2)) < 0)
        return -1;
    util_hex(b->ptr + b->len, data, len); /* NUL-terminated, as the buffer stays */
    b->len += 2 * len;
    return 0;
}

int buf_addbase64(struct buf *b, const void *data, size_t len)
{
    size_t n = st_mult(st_add(len, 2) / 3, 4);

    if (len > INT_MAX / 2 || grow(b, n) < 0)
        return -1;
    /* OpenSSL's encoder; it NUL-terminates, as the buffer stays */
    EVP_EncodeBlock((unsigned char *)b->ptr + b->len, data, (int)len);
    b->len += n;
    return 0;
}

int buf_check(const struct buf *b, const char *what, struct err *err)
{
    if (b->toobig)
        return err_set(err, ERR_TOOBIG, "%s is larger than %zu bytes", what, b->max);
    return 0;
}
