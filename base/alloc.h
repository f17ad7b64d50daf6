/*
 * base/alloc.h - allocation that never returns NULL.
 *
 * Like git's xmalloc and h2o_mem_alloc ("dies if impossible"): a server that
 * cannot get a few bytes cannot do anything useful, and checking every
 * allocation by hand hides the real error paths.
 */
#ifndef BASE_ALLOC_H
#define BASE_ALLOC_H

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
/* Copies `n` bytes and a terminating NUL. */
char *xmemdupz(const void *p, size_t n);

/* Size arithmetic that aborts on overflow instead of wrapping. */
size_t st_add(size_t a, size_t b);
size_t st_mult(size_t a, size_t b);

/* Frees `p` and sets it to NULL. */
#define FREE_AND_NULL(p)                                                                           \
 do {                                                                                              \
  free(p);                                                                                         \
  (p) = NULL;                                                                                      \
 } while (0)

/* For invariants only: bad input never reaches a BUG(). */
#define BUG(...) base_bug(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void base_bug(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
