/*
 * base/arena.h - the per-request arena (cf. h2o_mem_pool_t).
 *
 * Everything one request needs is allocated here and freed at once when the
 * request completes. arena_defer() ties other resources (a json_t, an xmlDoc)
 * to the arena: their release functions run, newest first, in arena_release().
 */
#ifndef BASE_ARENA_H
#define BASE_ARENA_H

struct arena_chunk;
struct arena_defer;

struct arena {
    struct arena_chunk *chunks;
    struct arena_defer *defers;
    size_t used; /* bytes handed out, for limits and tests */
};

#define ARENA_INIT                                                                                 \
 {                                                                                                 \
  NULL, NULL, 0                                                                                    \
 }

void arena_init(struct arena *a);
/* Runs the deferred functions, frees every chunk; the arena is empty again. */
void arena_release(struct arena *a);

/* Memory aligned for any type, valid until arena_release(); aborts on out-of-memory. */
void *arena_alloc(struct arena *a, size_t n);
/* A NUL-terminated copy of (p, n) in the arena. */
char *arena_memdupz(struct arena *a, const void *p, size_t n);
/* A NUL-terminated copy of a view; the null view gives NULL. */
char *arena_strz(struct arena *a, struct str s);
/* printf into the arena. */
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Runs fn(p) when the arena is released. */
void arena_defer(struct arena *a, void (*fn)(void *), void *p);

#endif
