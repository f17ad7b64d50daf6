/*
 * base/alloc.c - aborting allocators and overflow-checked size arithmetic.
 */
#include "base/base.h"

static _Noreturn void die_oom(size_t n)
{
    fprintf(stderr, "ltibadges: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        die_oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (!p)
        die_oom(st_mult(nmemb, size));
    return p;
}

void *xrealloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);

    if (!p)
        die_oom(n);
    return p;
}

char *xmemdupz(const void *src, size_t n)
{
    char *p = xmalloc(st_add(n, 1));

    if (n)
        memcpy(p, src, n);
    p[n] = '\0';
    return p;
}

char *xstrdup(const char *s)
{
    return xmemdupz(s, strlen(s));
}

size_t st_add(size_t a, size_t b)
{
    if (a > SIZE_MAX - b)
        BUG("size overflow: %zu + %zu", a, b);
    return a + b;
}

size_t st_mult(size_t a, size_t b)
{
    if (a && b > SIZE_MAX / a)
        BUG("size overflow: %zu * %zu", a, b);
    return a * b;
}

void base_bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "BUG: %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
