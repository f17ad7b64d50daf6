/*
 * base/arena.c - a bump allocator in chunks; big requests get a chunk of their own.
 */
#include "base/base.h"

#define CHUNK_SIZE 8192
#define ALIGN      16

struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    _Alignas(ALIGN) unsigned char data[];
};

struct arena_defer {
    struct arena_defer *next;
    void (*fn)(void *);
    void *p;
};

void arena_init(struct arena *a)
{
    a->chunks = NULL;
    a->defers = NULL;
    a->used = 0;
}

void arena_release(struct arena *a)
{
    /* deferred releases first: they may refer to arena memory */
    while (a->defers) {
        struct arena_defer *d = a->defers;

        a->defers = d->next;
        d->fn(d->p);
    }
    while (a->chunks) {
        struct arena_chunk *c = a->chunks;

        a->chunks = c->next;
        free(c);
    }
    a->used = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
    struct arena_chunk *c = a->chunks;
    size_t need = st_add(n, ALIGN - 1) & ~(size_t)(ALIGN - 1);

    if (need == 0)
        need = ALIGN;
    if (!c || c->size - c->used < need) {
        size_t size = need > CHUNK_SIZE / 4 ? need : CHUNK_SIZE;

        c = xmalloc(st_add(sizeof(*c), size));
        c->size = size;
        c->used = 0;
        if (size == need && a->chunks) {
            /* a big block: keep the current chunk first so its free space stays usable */
            c->next = a->chunks->next;
            a->chunks->next = c;
        } else {
            c->next = a->chunks;
            a->chunks = c;
        }
    }
    c->used += need;
    a->used += need;
    return c->data + c->used - need;
}

char *arena_memdupz(struct arena *a, const void *p, size_t n)
{
    char *d = arena_alloc(a, st_add(n, 1));

    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

char *arena_strz(struct arena *a, struct str s)
{
    if (!s.ptr)
        return NULL;
    return arena_memdupz(a, s.ptr, s.len);
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
    char small[256];
    va_list ap2;
    int n;
    char *p;

    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return arena_memdupz(a, "", 0);
    if ((size_t)n < sizeof(small))
        return arena_memdupz(a, small, (size_t)n);
    p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void arena_defer(struct arena *a, void (*fn)(void *), void *p)
{
    struct arena_defer *d = arena_alloc(a, sizeof(*d));

    d->fn = fn;
    d->p = p;
    d->next = a->defers;
    a->defers = d;
}
